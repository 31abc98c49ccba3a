module vidmatte

go 1.26.8
