module github.com/poolproof/poolproof

go 1.26.0

require (
	github.com/Shopify/toxiproxy/v2 v2.12.0
	go.uber.org/goleak v1.3.0
)

require github.com/stretchr/testify v1.12.1 // indirect
