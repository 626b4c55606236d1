from mastodon.app import main

main()
