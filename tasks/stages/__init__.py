"""The pipeline's stages, one module each: what a stage depends on, its signature's inputs, its outputs and its
action, declared in one class (:mod:`.stage` says how). Doit-free: :mod:`tasks.cli.creators` makes doit's tasks
from :data:`STAGES`. Adding a stage: a module here and a line below.
"""
from .base import Base
from .cook import Cook
from .download import Download
from .fetch import Fetch
from .host_tools import HostTools
from .image import Image
from .initfs import Initfs
from .pkg import Package
from .qcow2 import Qcow2
from .relibc import Relibc
from .share import Share
from .stage import RecipeStage, Stage
from .toolchain import Toolchain

# In the order `doit list` and `doit help` show them: the pipeline, then the stages with a task per recipe.
STAGES: tuple[type[Stage] | type[RecipeStage], ...] = (
    Toolchain, HostTools, Relibc, Base, Initfs, Image, Qcow2, Fetch, Download, Cook, Package, Share,
)
