"""Write digits.npz next to this file: scikit-learn's 8x8 digits as images with one channel.

    python examples/own_model/make_data.py

The arrays are what your own data would be: x_train (1437, 8, 8, 1) float32 in [0, 1], y_train
(1437,) int labels 0..9, and the same for the test set (360 images, a stratified split with seed 0).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main(folder: Path = Path(__file__).resolve().parent) -> Path:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=360, stratify=digits.target,
                                                        random_state=0)
    out = folder / "digits.npz"
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
