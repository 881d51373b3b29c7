from imageferry.cli.main import main

raise SystemExit(main())
