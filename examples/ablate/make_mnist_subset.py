"""Write mnist_2k.npz next to this file: the first 2,000 MNIST training images and the first 1,000 test
images, as (28, 28, 1) float32 in [0, 1] (a CPU-sized budget for ablating the keras.io convnet).

    python examples/ablate/make_mnist_subset.py

MNIST comes from Keras' downloader, or from the IDX files in ABLATION_MNIST_DIR.
"""

from pathlib import Path

import numpy as np

from ablation import data


def main(folder: Path = Path(__file__).resolve().parent, train: int = 2000, test: int = 1000) -> Path:
    mnist = data.load("mnist", flatten=False)
    out = folder / "mnist_2k.npz"
    np.savez_compressed(out, x_train=mnist.x_train[:train], y_train=mnist.y_train[:train],
                        x_test=mnist.x_test[:test], y_test=mnist.y_test[:test])
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
