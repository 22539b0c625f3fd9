"""Leaders' statistics (统计分析): call and ticket figures per period with 环比/同比, charts and Excel export."""
