"""Runner: decode-once data, brief and full training, evaluation and prediction."""
