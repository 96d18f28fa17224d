"""TrioToK: a supervised actor platform for multi-tenant content and commerce on trio.

::

    from triotok import Actor, open_system

    class Greeter(Actor):
        async def receive(self, name):
            return f"hello, {name}"

    async with open_system(name="app") as system:
        ref = await system.spawn(Greeter, name="greeter")
        assert await ref.ask("trio") == "hello, trio"
"""

from ._exceptions import TriotokError as TriotokError
from .actors import Actor as Actor
from .actors import ActorRef as ActorRef
from .supervision import ActorSystem as ActorSystem
from .supervision import open_system as open_system

__version__ = "0.1.0"

from ._util import fixup_module_metadata

__all__ = ("Actor", "ActorRef", "ActorSystem", "TriotokError", "__version__", "open_system")

fixup_module_metadata(__name__, globals())
