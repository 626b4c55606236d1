from store.app import main

main()
