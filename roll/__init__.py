"""Roll packaging: RPM specs, the roll ISO and the Rocks-frontend integration."""
