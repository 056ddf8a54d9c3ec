"""Pure billing-policy tests: calendar, dunning, proration, spread. No servers, no I/O."""
