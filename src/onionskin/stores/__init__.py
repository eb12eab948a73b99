"""Where guards keep state that outlives a call: in memory (default) or in Redis."""
