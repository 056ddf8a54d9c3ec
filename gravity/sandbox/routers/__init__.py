"""The sandbox's HTTP routes, one router per concern: emergepay's API, then the `/_sandbox/` control surface."""
