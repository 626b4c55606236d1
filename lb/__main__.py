from lb.app import main

main()
