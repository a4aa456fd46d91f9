"""Images in: reading any image source into an RGB picture, its content digests, and the stream
of decoded batches that the encoders and the leakage guard read.

* :mod:`~fp_rank.images.decode`: one image source (path, bytes, PIL image, array, ``{'bytes',
  'path'}`` dict) -> a checked RGB ``PIL.Image``; headers read without decoding; digests;
* :mod:`~fp_rank.images.prefetch`: a bounded background thread running an iterator ahead.
"""
