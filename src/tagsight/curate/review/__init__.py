"""Two-stage human review in the browser: generalists keep/reject fast, specialists rate and caption."""
