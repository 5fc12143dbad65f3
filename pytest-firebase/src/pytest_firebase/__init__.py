"""pytest-firebase: the Firebase Local Emulator Suite as pytest fixtures.

Installing the distribution registers :mod:`pytest_firebase.plugin` with pytest (entry
point ``pytest11``, name ``firebase``; ``-p no:firebase`` turns it off).
"""

__version__ = "0.1.0"
