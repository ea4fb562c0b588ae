"""The console's pages, one module per part: signing in and one's account; the
ranger lead's review; the coordinator's programme; the admin's people and places."""
