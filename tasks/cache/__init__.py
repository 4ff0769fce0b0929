"""The shared build cache: one machine's task outputs are every machine's, verified (``cache=URL``).

Before a cacheable task runs (a cook, a package, relibc, the initfs, the image), its outputs are looked up by its
input signature in a store every machine reaches: S3 (``s3://BUCKET/PREFIX``, any S3 server) or a shared directory
(``file:///DIR``). An entry is a manifest signed with an Ed25519 key that the tree pins, naming each output's
content; a hit is checked against it before anything is put in place, then published as if the task had run.

* :mod:`.store`: the object store behind a URL (obstore: AWS, Garage, MinIO, R2 … or a directory), its faults as one
  exception.
* :mod:`.entry`: an entry's manifest, its signature, and each output packed and unpacked.
* :mod:`.tasks`: what the build asks: restore a task's outputs, upload them, count what happened.

Knows nothing of doit.
"""
