module keepstate

go 1.26.8

require (
	golang.org/x/sys v0.40.0
	golang.org/x/time v0.14.0
)
