"""The batch as Ray actors: a fleet of machines, or this one (`upres run --ray ADDRESS`)."""
