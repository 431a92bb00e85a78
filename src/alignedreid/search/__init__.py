"""Search one's own crops: query images (a folder, searched recursively; any name, any format Pillow
reads) against a gallery (a folder, or the evaluation gallery), ranked by the evaluation's distance,
with a "same person" decision from the threshold the evaluation calibrated (metrics.json
``verification``).

- Listing (:func:`list_images`): every entry under the folder is either a row of the manifest or a
  line of ``skipped.txt`` with its reason (hidden entries, special files, links that lead nowhere or
  to folders, files that are no usable image by the image contract, duplicates of the same file).
  No identity or camera is needed.
- Features come from the same C++ program, model and precision as ``infer_cpp``
  (:func:`cached_features`), cached by image content in a feature store per model (append-only
  parts, keyed by the sha256 of the bytes decoded), so adding 10 images to a gallery computes and
  writes 10 and removing one computes none; a folder's features are a view of the store.
- Ranking (:func:`search`): the verification distance (global, or global + DMLI local on each
  query's global shortlist), the gallery streamed in blocks (:mod:`.streaming`), the top-k gallery
  images per query, ``same_person`` when the distance is below the threshold.
"""

LAYER = 4  # docs/architecture.md §2: imports go to this layer and the ones below
