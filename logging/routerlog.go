package logging

// RouterLog writes router lines. (Placeholder: being written.)
type RouterLog struct{}

// Write writes one router line.
func (rl *RouterLog) Write(l *Line) {}
