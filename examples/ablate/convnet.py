"""The keras.io "Simple MNIST convnet" (F. Chollet, keras.io/examples/vision/mnist_convnet), as a user
writes it, to ablate as it is:

    python examples/ablate/make_mnist_subset.py          # writes examples/ablate/mnist_2k.npz
    ablation ablate examples/ablate/convnet.py:convnet --data examples/ablate/mnist_2k.npz \\
        --include activation --seeds 5 --epochs 10 --study-file examples/ablate/ablate-convnet.toml

It has one Dropout layer; ``--include activation`` adds its two hidden ReLUs (made linear when removed).
"""

import keras
from keras import layers


def convnet(input_shape, num_classes):
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
