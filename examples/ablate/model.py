"""A small CNN with parts to ablate: two Dropout layers, one BatchNormalization, one L2 kernel
regularizer. ``ablation ablate examples/ablate/model.py:build --data examples/own_model/digits.npz``
finds the four and trains the model without each (nothing here knows about ablation)."""

import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, kernel_regularizer=keras.regularizers.L2(1e-3))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
