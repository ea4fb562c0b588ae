"""Training: sessions and their attendance (their rules for the engine), the
coordinators' lists and the attendance report."""
