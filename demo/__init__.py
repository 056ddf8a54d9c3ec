"""`billing demo`: a clinic group's year of billing, played in simulated time on the embedded stack."""
