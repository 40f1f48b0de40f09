from voxtral_native.cli import main

raise SystemExit(main())
