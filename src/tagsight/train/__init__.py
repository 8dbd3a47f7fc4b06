"""Training: one loop for every objective, torchrun-native distribution, exact resume."""
