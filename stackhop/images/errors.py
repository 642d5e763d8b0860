"""The one exception the images package raises for things a user can fix.

It is `stackhop.errors.ImageError`: the reference parser in core raises the same class, so an
`except ImageError` written against either name catches every image error.
"""

from __future__ import annotations

from stackhop.errors import ImageError

__all__ = ["ImageError"]
