"""The frozen program's script: the same entry as ``python -m imageferry``."""

from imageferry.__main__ import main

raise SystemExit(main())
