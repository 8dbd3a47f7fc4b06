"""Privacy gates: consent policy, opt-outs, face blurring, deletion."""
