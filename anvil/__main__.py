from anvil.cli import main

main()
