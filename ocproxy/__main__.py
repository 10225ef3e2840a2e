from ocproxy.cli import main

raise SystemExit(main())
