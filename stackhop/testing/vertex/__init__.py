"""placeholder"""

from .fake import FakeVertex

__all__ = ["FakeVertex"]
