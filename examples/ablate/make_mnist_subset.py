"""Write a CPU-sized MNIST subset next to this file: the first ``--train`` training images and the first
``--test`` test images, float32 in [0, 1].

    python examples/ablate/make_mnist_subset.py                       # mnist_2k.npz: 2,000 / 1,000, (28, 28, 1)
    python examples/ablate/make_mnist_subset.py --train 10000 --test 10000 --flatten   # mnist_10k_flat.npz, (784,)

The first (the default) is the budget of the keras.io convnet example; the second, flattened for an
MLP, of the zoo's ``srivastava2014_mnist`` example (examples/ablate/ablate-srivastava.toml).
MNIST comes from Keras' downloader, or from the IDX files in ABLATION_MNIST_DIR.
"""

import argparse
from pathlib import Path

import numpy as np

from ablation import data


def main(folder: Path = Path(__file__).resolve().parent, train: int = 2000, test: int = 1000,
         flatten: bool = False) -> Path:
    mnist = data.load("mnist", flatten=flatten)
    name = f"mnist_{train // 1000}k{'_flat' if flatten else ''}.npz"
    out = folder / name
    np.savez_compressed(out, x_train=mnist.x_train[:train], y_train=mnist.y_train[:train],
                        x_test=mnist.x_test[:test], y_test=mnist.y_test[:test])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000, help="the first N training images (default 2000)")
    parser.add_argument("--test", type=int, default=1000, help="the first N test images (default 1000)")
    parser.add_argument("--flatten", action="store_true", help="(784,) vectors for an MLP (default (28, 28, 1))")
    args = parser.parse_args()
    print(f"wrote {main(train=args.train, test=args.test, flatten=args.flatten)}")
