"""Safe image input."""

from .image import ACCEPTED_FORMATS, load_image
from .input import ImageInput
from .limits import Limits

__all__ = ["ACCEPTED_FORMATS", "ImageInput", "Limits", "load_image"]
