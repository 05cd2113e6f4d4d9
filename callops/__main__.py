from callops.orchestrator.cli import main

main()
