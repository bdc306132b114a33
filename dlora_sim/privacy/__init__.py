"""What the cloud can recover from what crosses the link, measured on the real MiniLM-L6.

DLoRA's privacy claim is that the cloud sees embeddings, not text. With a public base model the
cloud holds the same embedding table, so an uploaded token embedding is its token
(:mod:`.tokens`); with a frozen public head the label follows from the gradient the device
sends back (:mod:`.labels`). A private rotation of the uploads is undone from the weights the
cloud would need and from the distances it keeps (:mod:`.rotation`); the hidden states at a
split-learning cut are inverted by a model fitted on public text (:mod:`.inversion`); the
accuracy noise costs is read from real training profiles (:mod:`.accuracy`). Each attack reports
how much it recovers; :mod:`.audit` runs them on real task text for ``dlora-sim privacy``. What each strategy lets the cloud see is stated by
the strategies themselves (``Strategy.cloud_sees``); this package measures how much that reveals.

Imports torch and transformers (the ``[profile]`` extra), like :mod:`dlora_sim.profiling`.
"""
