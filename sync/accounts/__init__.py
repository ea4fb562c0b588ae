"""Who is calling: users, devices and their enrollment, sign-in, tokens, the
principal of a request and what its scope lets it see, and what each device's contact
leaves noted (``contact``)."""
