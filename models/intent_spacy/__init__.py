"""The spaCy intent technique: spaCy's own text classifier, trained from scratch, for the ``intents`` task."""
