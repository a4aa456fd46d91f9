"""Version numbers carried by every result file."""

__version__ = "0.1.0"

#: Version of the evaluation protocol (metric definitions, gallery schema, embedding rules).
#: Bump it whenever a change could move a published number; old reports keep their value.
PROTOCOL_VERSION = "1.1"

#: What each protocol version changed (reports keep the version they were made under).
PROTOCOL_CHANGES = {
    "1.0": "first release",
    "1.1": "model inputs by default exactly as the reference code makes them: the checkpoint's transformers "
    "image processor (the torch resize is opt-in, preprocessing='fast'); MiewID resized with OpenCV INTER_LINEAR; "
    "Recall@k added beside CMC@k",
}
