"""digitlab: a handwritten-digit recognition lab (MNIST models and a drawing app)."""
