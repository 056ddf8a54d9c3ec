"""The Gravity emergepay sandbox: a real HTTP imitation of the API plus a `/_sandbox/` control surface."""
