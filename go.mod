module keepstate

go 1.26.8
