"""Training's logic: datasets and their frozen test split, collection, validation, drift, evaluation, the gate."""
