"""``python -m mindfu_cli``."""

from mindfu_cli.main import main

raise SystemExit(main())
