"""Training entry points, plain PyTorch with dataclass configs; each module has ``main(argv)``."""
