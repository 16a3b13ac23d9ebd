"""Tables split across parties: vertical (columns by party) and their encoders."""
