"""Image classification (torchvision ResNets on built-in digits or an image folder)."""
