"""Version numbers carried by every result file."""

__version__ = "0.1.0"

#: Version of the evaluation protocol (metric definitions, gallery schema, embedding rules).
#: Bump it whenever a change could move a published number; old reports keep their value.
PROTOCOL_VERSION = "1.0"
