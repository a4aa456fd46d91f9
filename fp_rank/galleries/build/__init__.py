"""Writing gallery datasets: the one code path every gallery source ends in.

A source adapter (the per-dataset modules of ``gallery_builders``, or :mod:`fp_rank.demo.gallery`)
lists its images as :class:`~fp_rank.galleries.build.spec.Candidate` records, describes the
gallery in a :class:`~fp_rank.galleries.build.spec.GallerySpec` and hands both, with its selection
rule, to :func:`~fp_rank.galleries.build.writer.build_gallery`, which writes the Parquet shards,
``manifest.jsonl`` and the dataset card (:mod:`fp_rank.galleries.build.card`).

- :mod:`~fp_rank.galleries.build.spec`: the records, the builder version and the naming rules;
- :mod:`~fp_rank.galleries.build.sources`: reading a source on disk (paths, readers, image checks);
- :mod:`~fp_rank.galleries.build.sampling`: the reference code's pandas draw, without pandas;
- :mod:`~fp_rank.galleries.build.writer`: selection, checks and the atomic write;
- :mod:`~fp_rank.galleries.build.card`: the dataset card.

Loading a built gallery is :func:`fp_rank.load_gallery`; this package is only needed to build one.
"""
