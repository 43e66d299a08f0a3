"""The built-in synthetic "foam" sample and the demo that trains on it (``lazyunet demo``)."""
