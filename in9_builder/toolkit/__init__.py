"""The paper's toolkit (its App. A): IN-9 and IN-9L from an ImageNet tree, with OpenCV GrabCut foregrounds.

Modules, each with one job:
  boxes     bounding boxes as ImageNet ships them (VOC XML per image, LOC_*_solution.csv)
  tree      the ImageNet folder -> a sorted list of candidate images (the build's index)
  geometry  Resize(256, NEAREST) + CenterCrop(224) of images, masks and boxes
  filters   the per-image filters of App. A, each rejection with a named reason
  segment   deterministic GrabCut
  shards    chunked, resumable, shardable processing of the index, and the merge of the shards
  balance   seeded class balancing and the build summary
  fake_tree a small ImageNet-shaped tree of synthetic photos (tests and benchmarks)

The ``imagenet`` source (``in9_builder.sources.imagenet``) runs them; ``in9-build toolkit`` is
``in9_builder.cli.toolkit``; the release layout is ``in9_builder.release_layout``.
"""
